CREATE TABLE `access_tokens` (
	`id` int unsigned AUTO_INCREMENT NOT NULL,
	`account_id` int unsigned NOT NULL,
	`name` varchar(100) NOT NULL,
	`token_hash` char(64) NOT NULL,
	`prefix` varchar(12) NOT NULL,
	`created_at` timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	`revoked_at` timestamp(3),
	CONSTRAINT `access_tokens_id` PRIMARY KEY(`id`),
	CONSTRAINT `access_tokens_hash` UNIQUE(`token_hash`)
);
--> statement-breakpoint
CREATE TABLE `classic_keys` (
	`account_id` int unsigned NOT NULL,
	`ukey` varchar(64) NOT NULL,
	`created_at` timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	CONSTRAINT `classic_keys_account_id` PRIMARY KEY(`account_id`),
	CONSTRAINT `classic_keys_ukey` UNIQUE(`ukey`)
);
--> statement-breakpoint
CREATE TABLE `classic_stat_keys` (
	`stat_id` int unsigned NOT NULL,
	`account_id` int unsigned NOT NULL,
	`key` varchar(64) NOT NULL,
	CONSTRAINT `classic_stat_keys_stat_id` PRIMARY KEY(`stat_id`),
	CONSTRAINT `classic_stat_keys_key` UNIQUE(`account_id`,`key`)
);
--> statement-breakpoint
CREATE TABLE `sessions` (
	`id_hash` char(64) NOT NULL,
	`user_id` int unsigned NOT NULL,
	`csrf_token` varchar(64) NOT NULL,
	`created_at` timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	`expires_at` timestamp(3) NOT NULL,
	CONSTRAINT `sessions_id_hash` PRIMARY KEY(`id_hash`)
);
--> statement-breakpoint
CREATE TABLE `statsd_tokens` (
	`id` int unsigned AUTO_INCREMENT NOT NULL,
	`account_id` int unsigned NOT NULL,
	`name` varchar(100) NOT NULL,
	`token_hash` char(64) NOT NULL,
	`prefix` varchar(12) NOT NULL,
	`created_at` timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	`revoked_at` timestamp(3),
	CONSTRAINT `statsd_tokens_id` PRIMARY KEY(`id`),
	CONSTRAINT `statsd_tokens_hash` UNIQUE(`token_hash`)
);
--> statement-breakpoint
CREATE TABLE `users` (
	`id` int unsigned AUTO_INCREMENT NOT NULL,
	`account_id` int unsigned NOT NULL,
	`email` varchar(255) NOT NULL,
	`password_hash` varchar(255) NOT NULL,
	`created_at` timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	CONSTRAINT `users_id` PRIMARY KEY(`id`),
	CONSTRAINT `users_email` UNIQUE(`email`)
);
--> statement-breakpoint
CREATE INDEX `access_tokens_account` ON `access_tokens` (`account_id`);--> statement-breakpoint
CREATE INDEX `sessions_user` ON `sessions` (`user_id`);--> statement-breakpoint
CREATE INDEX `statsd_tokens_account` ON `statsd_tokens` (`account_id`);--> statement-breakpoint
CREATE INDEX `users_account` ON `users` (`account_id`);