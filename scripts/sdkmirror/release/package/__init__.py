"""The dist-only package: repackaging the SDK's build and inspecting the packed tarball."""
