from citykit.cli import main

raise SystemExit(main())
