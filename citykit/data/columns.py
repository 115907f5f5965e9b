"""The canonical tables' columns, in order: the one contract between generator, importers,
loader, schemas and notebooks. (pandera schemas in `citykit.data.schema` are built on these.)"""

from __future__ import annotations

STATUSES = ("Open", "In Progress", "Closed", "Cancelled")
CHANNELS = (
    "Phone",
    "Web",
    "App",
    "Email",
    "Walk-in",
    "Social",
    "Other",
)  # Other: an export's channel no mapping places
OUTCOMES = ("Approved", "Denied", "Withdrawn", "Pending")

# SPD-15 (2024) minimum categories as indicator-column suffixes, in the standard's order.
RACE_ETHNICITY = {
    "aian": "American Indian or Alaska Native",
    "asian": "Asian",
    "black": "Black or African American",
    "hispanic": "Hispanic or Latino",
    "mena": "Middle Eastern or North African",
    "nhpi": "Native Hawaiian or Pacific Islander",
    "white": "White",
}

# Flags set on defective rows ("flag, don't silently repair"); metrics.yml says which exclude a row.
REQUEST_FLAGS = (
    "flag_closed_before_created",  # closed_at earlier than created_at (real placeholder dates excluded)
    "flag_placeholder_date",  # closed_at is a placeholder such as 1900-01-01 (imports: any implausible date)
    "flag_placeholder_coords",  # 0,0 or another placeholder point outside the city
    "flag_type_variant",  # request_type was a spelling variant, mapped to its standard name
    "flag_missing_neighborhood",  # no neighborhood in the export
)

SERVICE_REQUESTS = (
    "request_id",
    "created_at",
    "closed_at",
    "due_at",
    "status",
    "agency",
    "request_type",
    "descriptor",
    "channel",
    "neighborhood",
    "council_district",
    "latitude",
    "longitude",
    "is_duplicate",
    "parent_request_id",
    *REQUEST_FLAGS,
)

NEIGHBORHOODS = (
    "neighborhood",
    "council_district",
    "population",
    "households",
    "median_household_income",
    "area_km2",
    *(f"pop_{code}" for code in RACE_ETHNICITY),  # "alone" counts
    "pop_multiracial",  # Multiracial and/or Multiethnic; the pop_* columns sum to population
)

# The columns published in the rows of program applications, as the disaggregation standard's
# table of columns classes them (privacy.columns; a test keeps the two equal). decided_at,
# age_band, household_size, income_band and days_to_decision are published only in the aggregate
# table beside it (privacy.aggregate_tables), or not at all.
PROGRAM_APPLICATIONS = (
    "application_id",  # a keyed hash of the raw id (A- and 10 hex digits), never the raw id
    "program",
    "submitted_at",  # the first day of the month of submission
    "outcome",  # Approved, Denied, Withdrawn, Pending
    "neighborhood",  # may be generalized away (null) by k-anonymity; council_district remains
    "council_district",
    "gender",
    *(f"race_{code}" for code in RACE_ETHNICITY),  # multi-select indicators
    "race_not_reported",
    "race_declined",
    "language",
)

TABLE_COLUMNS = {
    "service_requests": SERVICE_REQUESTS,
    "neighborhoods": NEIGHBORHOODS,
    "program_applications": PROGRAM_APPLICATIONS,
}

# Which timestamp a `period` filters on, per table.
PERIOD_COLUMN = {"service_requests": "created_at", "program_applications": "submitted_at"}
