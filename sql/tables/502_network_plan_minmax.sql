-- Network plan, min-max (issue #19): the plan minimises the worst gateway utilisation
-- for a move budget and reports the bound; a frontier of budgets; pinned devices.
-- Reach is the MEAN heard RSSI (network_heard_links, network_reach): the settings text
-- and the moves table comment said "median"; they now say what is computed.
update network_settings
set description = 'A link is usable when its mean heard RSSI over the reach window is at or above this, dBm.'
where name = 'rssi_floor_dbm';

alter table network_plan_moves add column is_single_point_of_failure boolean;
comment on table network_plan_moves is 'Grain: one row per recommended device move (a device appears at most once). to_rssi_dbm is the mean heard RSSI of the device at the target gateway over the reach window, dBm; reason relieve_overload | failover | balance; is_single_point_of_failure: the target is the only usable gateway the device reaches.';

alter table network_plan_summary add column objective varchar;
alter table network_plan_summary add column max_moves integer;
alter table network_plan_summary add column n_failover integer;
alter table network_plan_summary add column n_stranded integer;
alter table network_plan_summary add column max_utilization_optimum double;
alter table network_plan_summary add column max_utilization_bound double;
alter table network_plan_summary add column n_single_gateway_before integer;
alter table network_plan_summary add column n_single_gateway_after integer;
alter table network_plan_summary add column n_spof_created integer;
alter table network_plan_summary add column n_spof_removed integer;
comment on table network_plan_summary is 'Grain: one row per site in the plan, and one row with site = ''*'' for the fleet. Utilization is attached devices / capacity of active gateways (fraction); min_headroom is the smallest 1 - utilization over the site''s gateways (fraction). n_moves counts every move, n_failover those off down gateways (never counted against max_moves), n_stranded devices of down gateways with no usable option. max_utilization_optimum (fleet row): the best whole-device maximum without a budget; max_utilization_bound: a lower bound on the maximum of any assignment, even one splitting devices (devices / capacity of a closed set of gateways). n_single_gateway_*: devices with no usable gateway other than their own that has room (load below capacity); n_spof_created / n_spof_removed: devices that lose / gain such a failover through the plan. is_feasible: every gateway within capacity after the plan; fairness_tradeoff: Jain''s index lower after the plan.';

create table network_plan_frontier (
    n_moves              integer not null,
    n_failover           integer not null,
    threshold            double not null,
    max_utilization      double,
    jain                 double,
    n_over_capacity      integer not null,
    n_single_gateway     integer not null,
    max_utilization_bound double,
    computed_at          timestamp not null,
    params               varchar not null
);
comment on table network_plan_frontier is 'Grain: one row per move budget on the frontier. For each threshold (fraction of capacity), the fewest moves (n_moves, failovers excluded) that keep every active gateway at or below it, and what that assignment gives: max_utilization and Jain''s index over active gateways (fraction), gateways over capacity, devices without a failover gateway with room. Rows with more moves have a strictly lower max_utilization. max_utilization_bound: the lower bound (fraction).';

create table network_plan_pins (
    device_id   varchar primary key,
    reason      varchar
);
comment on table network_plan_pins is 'Grain: one row per device the plan must never move (user data: fleet.network.pin() or an insert).';
