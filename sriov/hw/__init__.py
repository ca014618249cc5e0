"""The hardware model: register map, device, IOMMU, clock."""
