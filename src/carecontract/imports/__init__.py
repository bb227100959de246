"""Importers: the national data sets a commissioner receives (CWT, COSD, SUS/HES APC, civil registration
deaths, FHIR R4) mapped to the activity-record interchange format, then ingested with every ingest
guarantee. Each kind lives in its own module here (``carecontract.imports.<kind>``) and follows the
contract in :mod:`carecontract.imports.base`.
"""
