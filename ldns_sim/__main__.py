from ldns_sim.cli import main

raise SystemExit(main())
