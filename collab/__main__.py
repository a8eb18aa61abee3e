from collab.cli import main

main()
