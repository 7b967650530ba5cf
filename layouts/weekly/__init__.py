"""The weekly report's presentation: HTML (and so the PDF), figures, the workbook."""
