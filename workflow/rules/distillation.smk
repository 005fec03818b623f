# Students that learn from a teacher's checkpoint (KD, Hint, AT+KD, FSP+KD, and any registered method
# with needs_teacher): each job takes its teacher's model.pt as input.


use rule train as distill with:
    input:
        dependency_models,
    output:
        run_outputs("student"),
    wildcard_constraints:
        run=run_pattern("student"),
