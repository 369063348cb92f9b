from PySide6.QtCore import Signal
from PySide6.QtWidgets import QWidget
class DataTab(QWidget):
    importFinished = Signal(object)
    def import_demo(self): pass
