"""Application Insights, when the deployment gives a connection string."""

from __future__ import annotations

import logging

from chatbot.config import Environment

logger = logging.getLogger(__name__)
_configured = False


def configure_telemetry(env: Environment) -> bool:
    """Send logs and traces to Azure Monitor once per process; a no-op without a connection.
    Application Insights has local (key) auth off, so ingestion signs in with the app's
    identity."""
    global _configured
    if _configured or not env.is_set("APPLICATIONINSIGHTS_CONNECTION_STRING"):
        return _configured
    from azure.monitor.opentelemetry import configure_azure_monitor

    from chatbot.llm import create_azure_credential

    configure_azure_monitor(
        connection_string=env.get("APPLICATIONINSIGHTS_CONNECTION_STRING"),
        credential=create_azure_credential(env),
        logger_name="chatbot",
    )
    _configured = True
    logger.info("Application Insights telemetry configured")
    return True
