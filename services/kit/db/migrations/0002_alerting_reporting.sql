CREATE TABLE `alert_channels` (
	`id` int unsigned AUTO_INCREMENT NOT NULL,
	`account_id` int unsigned NOT NULL,
	`rule_id` int unsigned,
	`kind` varchar(16) NOT NULL,
	`target` varchar(1024) NOT NULL,
	`secret` varchar(255),
	`created_ms` bigint unsigned NOT NULL,
	CONSTRAINT `alert_channels_id` PRIMARY KEY(`id`)
);
--> statement-breakpoint
CREATE TABLE `alert_deliveries` (
	`id` int unsigned AUTO_INCREMENT NOT NULL,
	`event_id` int unsigned NOT NULL,
	`channel_id` int unsigned,
	`kind` varchar(16) NOT NULL,
	`target` varchar(1024) NOT NULL,
	`idempotency_key` varchar(64) NOT NULL,
	`status` varchar(8) NOT NULL DEFAULT 'pending',
	`attempts` int unsigned NOT NULL DEFAULT 0,
	`next_attempt_ms` bigint unsigned NOT NULL,
	`lease_owner` varchar(128),
	`lease_until_ms` bigint unsigned,
	`last_error` varchar(1024),
	`sent_ms` bigint unsigned,
	CONSTRAINT `alert_deliveries_id` PRIMARY KEY(`id`),
	CONSTRAINT `alert_deliveries_key` UNIQUE(`idempotency_key`)
);
--> statement-breakpoint
CREATE TABLE `alert_events` (
	`id` int unsigned AUTO_INCREMENT NOT NULL,
	`rule_id` int unsigned NOT NULL,
	`account_id` int unsigned NOT NULL,
	`seq` int unsigned NOT NULL,
	`from_state` tinyint unsigned NOT NULL,
	`to_state` tinyint unsigned NOT NULL,
	`value` double,
	`minute` int unsigned NOT NULL,
	`created_ms` bigint unsigned NOT NULL,
	CONSTRAINT `alert_events_id` PRIMARY KEY(`id`),
	CONSTRAINT `alert_events_rule_seq` UNIQUE(`rule_id`,`seq`)
);
--> statement-breakpoint
CREATE TABLE `alert_rules` (
	`id` int unsigned AUTO_INCREMENT NOT NULL,
	`account_id` int unsigned NOT NULL,
	`stat_id` int unsigned NOT NULL,
	`kind` tinyint unsigned NOT NULL,
	`window_sec` int unsigned NOT NULL,
	`operator` tinyint unsigned NOT NULL DEFAULT 0,
	`threshold` double NOT NULL DEFAULT 0,
	`percentage` double NOT NULL DEFAULT 0,
	`delta_sec` int unsigned NOT NULL DEFAULT 0,
	`muted` boolean NOT NULL DEFAULT false,
	`state` tinyint unsigned NOT NULL DEFAULT 0,
	`state_since_ms` bigint unsigned NOT NULL,
	`transition_seq` int unsigned NOT NULL DEFAULT 0,
	`evaluated_minute` int unsigned NOT NULL DEFAULT 0,
	`evaluations` int unsigned NOT NULL DEFAULT 0,
	`last_value` double,
	`last_evaluated_ms` bigint unsigned,
	`created_ms` bigint unsigned NOT NULL,
	`updated_ms` bigint unsigned NOT NULL,
	CONSTRAINT `alert_rules_id` PRIMARY KEY(`id`)
);
--> statement-breakpoint
CREATE TABLE `report_sends` (
	`id` int unsigned AUTO_INCREMENT NOT NULL,
	`subscription_id` int unsigned NOT NULL,
	`period_start` int unsigned NOT NULL,
	`status` varchar(8) NOT NULL,
	`lease_owner` varchar(128),
	`lease_until_ms` bigint unsigned,
	`attempts` int unsigned NOT NULL DEFAULT 0,
	`last_error` varchar(1024),
	`sent_ms` bigint unsigned,
	CONSTRAINT `report_sends_id` PRIMARY KEY(`id`),
	CONSTRAINT `report_sends_once` UNIQUE(`subscription_id`,`period_start`)
);
--> statement-breakpoint
CREATE TABLE `report_subscriptions` (
	`id` int unsigned AUTO_INCREMENT NOT NULL,
	`account_id` int unsigned NOT NULL,
	`email` varchar(255) NOT NULL,
	`period` varchar(8) NOT NULL,
	`created_ms` bigint unsigned NOT NULL,
	`unsubscribed_ms` bigint unsigned,
	CONSTRAINT `report_subscriptions_id` PRIMARY KEY(`id`),
	CONSTRAINT `report_subscriptions_who` UNIQUE(`account_id`,`email`,`period`)
);
--> statement-breakpoint
CREATE INDEX `alert_channels_account` ON `alert_channels` (`account_id`,`rule_id`);--> statement-breakpoint
CREATE INDEX `alert_deliveries_due` ON `alert_deliveries` (`status`,`next_attempt_ms`);--> statement-breakpoint
CREATE INDEX `alert_deliveries_event` ON `alert_deliveries` (`event_id`);--> statement-breakpoint
CREATE INDEX `alert_events_account` ON `alert_events` (`account_id`,`id`);--> statement-breakpoint
CREATE INDEX `alert_rules_due` ON `alert_rules` (`evaluated_minute`);--> statement-breakpoint
CREATE INDEX `alert_rules_account` ON `alert_rules` (`account_id`,`stat_id`);