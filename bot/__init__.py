"""The Rapid Review bot core: calendar, process presets, configuration, engine and adapters."""
