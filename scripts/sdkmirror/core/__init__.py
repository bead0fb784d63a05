"""The project's vocabulary: settings, errors and exit codes, versions, tag names, record shapes."""
