-- Spellings of the built-in metrics' units, each with the unit it means: a
-- declaration of a built-in metric (ingest kind metrics) is compared with the
-- metric's unit through it, so that degC, °C and C are Cel (UCUM), percent is %, and
-- the like. Spellings are compared exactly (after trimming): UCUM is case-sensitive
-- (Pa, PA); a spelling not listed here means only itself. The percent units are one
-- (%RH and %EL are percent of saturation and of full charge; SenML names them apart).
-- grain: one row per spelling of a unit
-- columns: unit (a spelling), means (the unit of metric_builtins it stands for)
create or replace view metric_units as
select * from (values
    ('Cel', 'Cel'), ('degC', 'Cel'), ('°C', 'Cel'), ('℃', 'Cel'), ('C', 'Cel'),
    ('celsius', 'Cel'), ('Celsius', 'Cel'), ('deg_c', 'Cel'),
    ('%', '%'), ('%RH', '%'), ('%EL', '%'), ('percent', '%'), ('pct', '%'),
    ('V', 'V'), ('volt', 'V'), ('volts', 'V'),
    ('A', 'A'), ('amp', 'A'), ('ampere', 'A'), ('amperes', 'A'),
    ('g', 'g'), ('[g]', 'g'), ('gn', 'g'),
    ('kPa', 'kPa'),
    ('ppm', 'ppm'), ('[ppm]', 'ppm'),
    ('dBm', 'dBm'), ('dB', 'dB'),
    ('KiB', 'KiB'), ('kibibyte', 'KiB'),
    ('s', 's'), ('sec', 's'), ('second', 's'), ('seconds', 's'),
    ('code', 'code')
) as t(unit, means)
