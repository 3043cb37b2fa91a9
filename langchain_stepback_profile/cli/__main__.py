"""``python -m langchain_stepback_profile.cli``: the ``stepback-profile`` command."""

from langchain_stepback_profile.cli import main

if __name__ == "__main__":  # importing this module (pkgutil.walk_packages does) runs nothing
    raise SystemExit(main())
