# Students that learn from a teacher's checkpoint (KD, Hint, AT+KD, FSP+KD, and any registered method
# with needs_teacher): each job takes its teacher's trained model as input.


use rule train as distill with:
    input:
        run_inputs,
    output:
        run_outputs(),
    priority: 1
    wildcard_constraints:
        run=run_pattern("student"),
