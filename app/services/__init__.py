"""Domain services between the HTTP routes and the stores: artifact ingest and version checks,
alias moves, the worker fleet's reports, saved styles, calibration feedback, registering model
directories. No FastAPI here: routes parse, call a service, and render its answer."""
