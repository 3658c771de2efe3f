//! The registry: names to process actors, restart policies, cron schedules, templates, shutdown.
