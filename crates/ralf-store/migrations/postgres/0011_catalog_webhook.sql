-- The secret of the catalog's inbound webhook (docs/catalog.md#triggers), encrypted as the
-- keys' secrets are; NULL: the project has no such webhook.
ALTER TABLE catalog_settings ADD COLUMN webhook_secret TEXT;
