"""The subcommands: each module adds its flags and runs the command."""
