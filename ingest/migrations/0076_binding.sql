-- Security (issue 14): device <-> gateway binding on ingest's side.
-- reading_keys.gateway_id: which gateway's reading claimed the message id, so a duplicate is
-- acknowledged only to that gateway (NULL: a key stored before this migration).
ALTER TABLE reading_keys ADD COLUMN gateway_id text;
-- devices.reported: what the enrolled gateway last reported about the device (manufacturer, model,
-- serial, firmware, address, gateway, when). Kind, manufacturer, model, firmware and last gateway
-- change only through enrolment (triage/clinical/device_enrolments.py); ingest writes only this column and
-- first/last seen.
ALTER TABLE devices ADD COLUMN reported jsonb;
