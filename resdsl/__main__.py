from resdsl.cli.script import main

main()
