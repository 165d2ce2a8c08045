"""Knowledge-base ingestion: submission (service), the work (pipeline), its jobs."""
