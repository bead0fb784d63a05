"""Mirror the kimi-code monorepo and republish its Node SDK as a dist-only npm package."""

__version__ = "0.1.0"
