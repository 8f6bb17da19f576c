"""Exit codes of every abpn command (docs/PRODUCT.md): one owner, no dependencies, so the CLI
can use them without importing torch."""

EXIT_OK = 0  # all done
EXIT_FAILED = 1  # some files (or a training run) failed
EXIT_USAGE = 2  # bad options or inputs
EXIT_NOTHING = 3  # nothing to process
EXIT_ENVIRONMENT = 4  # model missing/unreadable, device unavailable
EXIT_INTERRUPTED = 130  # Ctrl-C / SIGTERM, after finishing or discarding in-flight writes
