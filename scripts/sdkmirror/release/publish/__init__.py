"""Publishing by stage: plan, build, upload, check, reproduce, and the pipeline."""
