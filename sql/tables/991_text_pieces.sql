-- Session 26: the long texts live ingest keeps are stored in pieces of a few dozen
-- characters, one row per piece (text_pieces), so that a checkpoint's memory no longer
-- grows with the text a table's last row group holds.
--
-- Why (docs/live.md, "memory"): after a checkpoint DuckDB appends to a new row group, and
-- a later checkpoint merges the table's last row groups into one once they hold twice the
-- rows of the first of them, rewriting them in memory: about twice their bytes. A row
-- group holds 122,880 rows, whatever their width, so for quarantine rows of up to 16 KiB
-- of text a merge could copy hundreds of MB. With pieces of at most 64 characters a row
-- group of text_pieces holds at most a few MB.
--
-- quarantine becomes a view of the same columns in the same order
-- (sql/views/035_quarantine.sql) over quarantine_rows: raw is there for the rows written
-- by file ingest and the analyses, and NULL with raw_text_id for a live payload's, whose
-- text is in text_pieces. Every existing row keeps its raw where it is.
create sequence text_id_seq start 1;

create table text_pieces (
    text_id  bigint not null,
    piece    integer not null,
    text     varchar not null
);

create table quarantine_rows (
    batch_id       bigint not null,
    kind           varchar not null,
    source         varchar not null,
    reason         varchar not null,
    detail         varchar,
    raw            varchar,
    quarantined_at timestamptz not null,
    raw_text_id    bigint,
    check ((raw is null) <> (raw_text_id is null))
);
insert into quarantine_rows
select batch_id, kind, source, reason, detail, raw, quarantined_at, NULL from quarantine;
drop table quarantine;

comment on table text_pieces is 'Grain: one row per piece of a long text kept by live ingest (text_id from text_id_seq; piece = 0-based position; text at most 64 characters). A text is its pieces in order, put together by the views that show it (quarantine.raw). One narrow row per few dozen characters keeps the rows a DuckDB checkpoint rewrites at once small.';
comment on table quarantine_rows is 'Grain: one row per rejected input row; the table behind the view quarantine, which shows raw whole. raw holds the row as JSON text exactly as received, or is NULL when the text is in text_pieces under raw_text_id (live payloads); reason is a short code, detail a sentence.';
