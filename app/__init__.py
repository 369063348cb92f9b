"""CognitiveTwin Studio: the PySide6 desktop app, a thin layer over cognitivetwin_core."""
