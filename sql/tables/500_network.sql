-- Network domain: settings the network views read, and the result tables the
-- network analysis writes (saturation fits, overload forecasts, the rebalancing
-- plan). Result tables carry computed_at (UTC) and params (JSON).
create table network_settings (
    name        varchar primary key,
    value       double not null,
    description varchar not null
);
comment on table network_settings is 'Grain: one row per tunable of the network views. Network.configure() changes them; the views read them.';

insert into network_settings values
    ('rssi_floor_dbm',            -115, 'A link is usable when its median heard RSSI is at or above this, dBm.'),
    ('reach_window_days',           14, 'Heard reports of this many days before the newest one define reach, days.'),
    ('overload_utilization',       0.9, 'A gateway above this share of its capacity is a bottleneck, fraction.'),
    ('down_after_hours',             3, 'A gateway silent this long (or reporting down) is down, hours.'),
    ('churn_window_days',            7, 'Connects are counted over this many days before the newest event, days.'),
    ('flapping_connects_per_day',    2, 'A device connecting more often than this per day is flapping, 1/day.'),
    ('forecast_window_days',        28, 'The overload trend is fitted on this many recent days, days.'),
    ('forecast_horizon_days',       30, 'Overload predicted within this many days is a finding, days.');

create table network_saturation (
    gateway_id              varchar not null,
    status                  varchar not null,
    reason                  varchar,
    n_hours                 integer not null,
    saturation_msgs_per_s   double,
    saturation_utilization  double,
    latency_base_ms         double,
    latency_slope_below     double,
    latency_slope_above     double,
    p_value                 double,
    r_squared               double,
    max_msgs_per_s          double,
    recent_p95_msgs_per_s   double,
    is_beyond_saturation    boolean not null,
    computed_at             timestamp not null,
    params                  varchar not null
);
comment on table network_saturation is 'Grain: one row per gateway with statistics. Hinge regression of hourly latency_ms on messages_per_s (statsmodels OLS): saturation_msgs_per_s is the fitted knee (msg/s), saturation_utilization the attached devices / capacity at the knee (fraction); slopes in ms per msg/s. status fitted | not_reached | insufficient_data; is_beyond_saturation when the recent p95 load (last 7 days) exceeds the knee.';

create table network_overload_forecast (
    gateway_id            varchar not null,
    status                varchar not null,
    n_days                integer not null,
    n_attached            double,
    capacity_devices      integer,
    slope_devices_per_day double,
    p_value               double,
    overload_at           timestamp,
    days_to_overload      double,
    as_of                 timestamp,
    computed_at           timestamp not null,
    params                varchar not null
);
comment on table network_overload_forecast is 'Grain: one row per active gateway. Linear trend (statsmodels OLS) of daily attached devices over the forecast window; overload_at (UTC) is when the trend reaches capacity_devices, days_to_overload counted from as_of. status predicted | stable | over_capacity | insufficient_data.';

create table network_plan_moves (
    device_id        varchar not null,
    site             varchar,
    from_gateway_id  varchar,
    to_gateway_id    varchar not null,
    to_rssi_dbm      double,
    reason           varchar not null,
    computed_at      timestamp not null,
    params           varchar not null
);
comment on table network_plan_moves is 'Grain: one row per recommended device move (a device appears at most once). to_rssi_dbm is the median heard RSSI of the device at the target gateway, dBm; reason relieve_overload | failover | balance.';

create table network_plan_summary (
    site                   varchar not null,
    n_gateways             integer not null,
    n_devices              integer not null,
    n_moves                integer not null,
    jain_before            double,
    jain_after             double,
    gini_before            double,
    gini_after             double,
    max_utilization_before double,
    max_utilization_after  double,
    min_headroom_before    double,
    min_headroom_after     double,
    n_over_capacity_before integer,
    n_over_capacity_after  integer,
    is_feasible            boolean not null,
    fairness_tradeoff      boolean not null,
    computed_at            timestamp not null,
    params                 varchar not null
);
comment on table network_plan_summary is 'Grain: one row per site in the plan, and one row with site = ''*'' for the fleet. Utilization is attached devices / capacity (fraction); min_headroom is the smallest 1 - utilization over the site''s gateways (fraction). is_feasible: every device can be placed within capacity; fairness_tradeoff: the capacity repair itself lowers Jain''s index.';
