CREATE TABLE `accounts` (
	`id` int unsigned AUTO_INCREMENT NOT NULL,
	`email` varchar(255) NOT NULL,
	`ezkey` varchar(64) NOT NULL,
	`ezkey_backup` varchar(64),
	`created_at` timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	CONSTRAINT `accounts_id` PRIMARY KEY(`id`),
	CONSTRAINT `accounts_email` UNIQUE(`email`),
	CONSTRAINT `accounts_ezkey` UNIQUE(`ezkey`),
	CONSTRAINT `accounts_ezkey_backup` UNIQUE(`ezkey_backup`)
);
--> statement-breakpoint
CREATE TABLE `flushes` (
	`id` char(36) NOT NULL,
	`instance` varchar(128) NOT NULL,
	`points` int unsigned NOT NULL,
	`created_at` timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	CONSTRAINT `flushes_id` PRIMARY KEY(`id`)
);
--> statement-breakpoint
CREATE TABLE `rollups_1d` (
	`stat_id` int unsigned NOT NULL,
	`bucket` int unsigned NOT NULL,
	`count` double NOT NULL,
	`sum` double NOT NULL,
	`min` double NOT NULL,
	`max` double NOT NULL,
	`sumsq` double NOT NULL,
	`last_value` double NOT NULL,
	`last_time` bigint unsigned NOT NULL,
	CONSTRAINT `rollups_1d_stat_id_bucket_pk` PRIMARY KEY(`stat_id`,`bucket`)
);
--> statement-breakpoint
CREATE TABLE `rollups_1h` (
	`stat_id` int unsigned NOT NULL,
	`bucket` int unsigned NOT NULL,
	`count` double NOT NULL,
	`sum` double NOT NULL,
	`min` double NOT NULL,
	`max` double NOT NULL,
	`sumsq` double NOT NULL,
	`last_value` double NOT NULL,
	`last_time` bigint unsigned NOT NULL,
	CONSTRAINT `rollups_1h_stat_id_bucket_pk` PRIMARY KEY(`stat_id`,`bucket`)
);
--> statement-breakpoint
CREATE TABLE `rollups_1m` (
	`stat_id` int unsigned NOT NULL,
	`bucket` int unsigned NOT NULL,
	`count` double NOT NULL,
	`sum` double NOT NULL,
	`min` double NOT NULL,
	`max` double NOT NULL,
	`sumsq` double NOT NULL,
	`last_value` double NOT NULL,
	`last_time` bigint unsigned NOT NULL,
	CONSTRAINT `rollups_1m_stat_id_bucket_pk` PRIMARY KEY(`stat_id`,`bucket`)
);
--> statement-breakpoint
CREATE TABLE `service_instances` (
	`id` varchar(128) NOT NULL,
	`service` varchar(32) NOT NULL,
	`address` varchar(255) NOT NULL,
	`ops_address` varchar(255) NOT NULL,
	`host` varchar(255) NOT NULL,
	`pid` int unsigned NOT NULL,
	`started_at` timestamp(3) NOT NULL,
	`heartbeat_at` timestamp(3) NOT NULL,
	CONSTRAINT `service_instances_id` PRIMARY KEY(`id`)
);
--> statement-breakpoint
CREATE TABLE `stats` (
	`id` int unsigned AUTO_INCREMENT NOT NULL,
	`account_id` int unsigned NOT NULL,
	`name` varchar(255) NOT NULL,
	`kind` tinyint unsigned NOT NULL,
	`public` boolean NOT NULL DEFAULT false,
	`created_at` timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	`deleted_at` timestamp(3),
	CONSTRAINT `stats_id` PRIMARY KEY(`id`),
	CONSTRAINT `stats_account_name_kind` UNIQUE(`account_id`,`name`,`kind`)
);
--> statement-breakpoint
CREATE INDEX `flushes_created` ON `flushes` (`created_at`);--> statement-breakpoint
CREATE INDEX `service_instances_service` ON `service_instances` (`service`,`heartbeat_at`);