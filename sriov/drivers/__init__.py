"""Drivers: what software on each side of the PCI bus does (the PF driver, the VF driver, their rings)."""
