"""The process as data: working days, presets and the dated timeline."""
