"""``python -m hilovit``: the ``hilovit`` command (also what ``torchrun -m hilovit`` launches)."""

from hilovit.cli import main

if __name__ == "__main__":
    main()
