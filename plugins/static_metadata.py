"""Remember table permission lookups when the metadata cannot change.

Datasette 0.65 answers "may this actor see this table?" by deep-copying the whole
metadata on every check, several times per request; with a description for every
column that copy is most of a post page's time. The published site's metadata is a
file read once at startup and no plugin here supplies metadata dynamically, so the
answer per (database, table) never changes while the server runs.
"""

from datasette import hookimpl


@hookimpl
def startup(datasette):
    lookup = getattr(datasette, "_table_permission_allows", None)
    if lookup is None:  # a Datasette without this internal: nothing to speed up
        return
    answers = {}

    def remembered(database, table):
        key = (database, table)
        if key not in answers:
            answers[key] = tuple(lookup(database, table))
        return list(answers[key])

    datasette._table_permission_allows = remembered
