"""The smoke build of the SDK against one toolchain, the matrix, and its reports."""
