# Teachers (Tables 1 and 5) and TAKD's assistants: trained once per teacher seed (config
# `teachers.<name>.shared`) and reused by every student that names them; their checkpoints are inputs
# of the students' jobs. An assistant is a teacher with a teacher of its own (its input here).


use rule train as teacher with:
    output:
        run_outputs(),
    priority: 3  # every student waits for its teacher
    wildcard_constraints:
        run=run_pattern("teacher"),
