"""The AIO registry client SDK (sync, later asyncio). Under construction: see the issues."""
