"""``python -m textarmor VERB ...``: the command line, also for launchers that take a module
(``torchrun --nproc_per_node 2 -m textarmor train ...``)."""
from textarmor.cli import main

if __name__ == "__main__":
    main()
