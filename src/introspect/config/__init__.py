"""The config: YAML read as data with limits (:mod:`.yaml_input`), checked once (:mod:`.validate`: the schema
with the registries' facts, :mod:`.registry_facts`), turned into frozen typed objects (:mod:`.model`, built by
:mod:`.build`; a claim is :mod:`.claim`'s one type) and, in the same pass, every relational check run on those
(:mod:`.model_checks`, :mod:`.references`, :mod:`.view_checks`).
Nothing downstream reads a raw config dict: the planner (:mod:`introspect.plan`) consumes the model.
No torch is imported here; planning runs on every ``snakemake`` call.
"""
