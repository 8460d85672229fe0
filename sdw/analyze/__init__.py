"""Dataset analysis (sdw-analyze): state diversity and quality of datasets, and the SDW paper's
misalignment experiment (whole-data BC return against training loss, one curve per dataset)."""
