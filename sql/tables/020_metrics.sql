-- The canonical metric catalog and the unit variants that ingest converts.
create table metric_catalog (
    metric      varchar primary key,
    unit        varchar not null,
    quantity    varchar not null,
    min_value   double not null,
    max_value   double not null,
    description varchar not null
);
comment on table metric_catalog is 'Grain: one row per canonical metric. A reading outside min_value..max_value is physically impossible and is quarantined.';

insert into metric_catalog values
    ('battery_pct',        '%',    'battery level',      0,      100,    'Battery state of charge, percent of full.'),
    ('battery_voltage_v',  'V',    'battery voltage',    0,      60,     'Battery terminal voltage, volts.'),
    ('battery_current_a',  'A',    'battery current',   -100,    100,    'Power source current, amperes (negative while charging).'),
    ('temperature_c',      'Cel',  'temperature',       -80,     250,    'Temperature, degrees Celsius.'),
    ('humidity_pct',       '%RH',  'relative humidity',  0,      100,    'Relative humidity, percent.'),
    ('vibration_g',        'g',    'vibration',          0,      100,    'Vibration RMS acceleration, standard gravity (9.80665 m/s2).'),
    ('pressure_kpa',       'kPa',  'pressure',           0,      100000, 'Absolute pressure, kilopascals.'),
    ('co2_ppm',            'ppm',  'CO2 concentration',  0,      100000, 'Carbon dioxide concentration, parts per million.'),
    ('rssi_dbm',           'dBm',  'signal strength',   -160,    10,     'Received signal strength, dBm.'),
    ('snr_db',             'dB',   'signal to noise',   -50,     60,     'Signal to noise ratio, dB.'),
    ('packet_loss_pct',    '%',    'packet loss',        0,      100,    'Share of messages lost, percent.'),
    ('memory_free_kb',     'KiB',  'free memory',        0,      1e9,    'Free device memory, KiB.'),
    ('reporting_interval_s','s',   'reporting interval', 1,      3e7,    'Reporting interval the device currently uses, seconds.');

create table metric_aliases (
    alias     varchar primary key,
    metric    varchar not null,
    scale     double not null,
    "offset"  double not null,
    note      varchar not null
);
comment on table metric_aliases is 'Grain: one row per accepted metric spelling. Ingest converts value * scale + offset to the canonical metric.';

insert into metric_aliases values
    ('battery_voltage_mv', 'battery_voltage_v', 0.001, 0, 'millivolts to volts'),
    ('battery_mv',         'battery_voltage_v', 0.001, 0, 'millivolts to volts'),
    ('battery_v',          'battery_voltage_v', 1, 0, 'volts'),
    ('battery_level',      'battery_pct', 1, 0, 'percent'),
    ('battery_current_ma', 'battery_current_a', 0.001, 0, 'milliamperes to amperes'),
    ('temperature_f',      'temperature_c', 5.0 / 9.0, -160.0 / 9.0, 'Fahrenheit to Celsius'),
    ('temperature_k',      'temperature_c', 1, -273.15, 'kelvin to Celsius'),
    ('humidity_rh',        'humidity_pct', 1, 0, 'percent relative humidity'),
    ('vibration_ms2',      'vibration_g', 1 / 9.80665, 0, 'm/s2 to standard gravity'),
    ('vibration_mg',       'vibration_g', 0.001, 0, 'milli-g to g'),
    ('pressure_pa',        'pressure_kpa', 0.001, 0, 'pascals to kilopascals'),
    ('pressure_hpa',       'pressure_kpa', 0.1, 0, 'hectopascals to kilopascals'),
    ('pressure_bar',       'pressure_kpa', 100, 0, 'bar to kilopascals'),
    ('rssi',               'rssi_dbm', 1, 0, 'dBm'),
    ('snr',                'snr_db', 1, 0, 'dB');
