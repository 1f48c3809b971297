-- The metrics tsfleet ships, as shipped (sql/tables/020_metrics.sql, 700_live.sql,
-- 720_lorawan.sql): what a declaration (ingest kind metrics) is held to. A declaration
-- of a built-in metric may narrow its physical range and set its drift tolerance, but
-- not change its unit (compared by meaning, see metric_units) nor widen its range: the
-- stored readings, the analyses and the live decoders take the metric in this unit. A
-- migration that adds a metric to metric_catalog adds it here too (a test compares the
-- two on a new store).
-- grain: one row per built-in metric
-- columns: metric, unit (UCUM where one exists), quantity, min_value, max_value (the
--   physical range, in the unit), description: as metric_catalog holds them in a new store
create or replace view metric_builtins as
select * from (values
    ('battery_pct',        '%',    'battery level',      0.0,    100.0,  'Battery state of charge, percent of full.'),
    ('battery_voltage_v',  'V',    'battery voltage',    0.0,    60.0,   'Battery terminal voltage, volts.'),
    ('battery_current_a',  'A',    'battery current',   -100.0,  100.0,  'Power source current, amperes (negative while charging).'),
    ('temperature_c',      'Cel',  'temperature',       -80.0,   250.0,  'Temperature, degrees Celsius.'),
    ('humidity_pct',       '%RH',  'relative humidity',  0.0,    100.0,  'Relative humidity, percent.'),
    ('vibration_g',        'g',    'vibration',          0.0,    100.0,  'Vibration RMS acceleration, standard gravity (9.80665 m/s2).'),
    ('pressure_kpa',       'kPa',  'pressure',           0.0,    100000.0, 'Absolute pressure, kilopascals.'),
    ('co2_ppm',            'ppm',  'CO2 concentration',  0.0,    100000.0, 'Carbon dioxide concentration, parts per million.'),
    ('rssi_dbm',           'dBm',  'signal strength',   -160.0,  10.0,   'Received signal strength, dBm.'),
    ('snr_db',             'dB',   'signal to noise',   -50.0,   60.0,   'Signal to noise ratio, dB.'),
    ('packet_loss_pct',    '%',    'packet loss',        0.0,    100.0,  'Share of messages lost, percent.'),
    ('memory_free_kb',     'KiB',  'free memory',        0.0,    1e9,    'Free device memory, KiB.'),
    ('reporting_interval_s','s',   'reporting interval', 1.0,    3e7,    'Reporting interval the device currently uses, seconds.'),
    ('battery_status',     'code', 'battery status',     0.0,    6.0,
     'LwM2M /3/0/20 battery status code: 0 normal, 1 charging, 2 charge complete, 3 damaged, 4 low battery, 5 not installed, 6 unknown.'),
    ('link_margin_db',     'dB',   'link margin',       -32.0,   31.0,
     'LoRaWAN DevStatusAns demodulation margin of the last downlink as the device received it, dB (the network server''s status event margin).')
) as t(metric, unit, quantity, min_value, max_value, description)
