"""The config: YAML read as data with limits (:mod:`.yaml_input`), checked once against the schema and
the registries' facts (:mod:`.validate`, :mod:`.references`, :mod:`.view_checks`,
:mod:`.registry_facts`) and turned into frozen typed objects (:mod:`.model`, built by :mod:`.build`).
Nothing downstream reads a raw config dict: the planner (:mod:`introspect.plan`) consumes the model.
No torch is imported here; planning runs on every ``snakemake`` call.
"""
