CREATE TABLE `dashboard_items` (
	`account_id` int unsigned NOT NULL,
	`stat_id` int unsigned NOT NULL,
	`position` int unsigned NOT NULL DEFAULT 0,
	`created_at` timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
	CONSTRAINT `dashboard_items_account_id_stat_id_pk` PRIMARY KEY(`account_id`,`stat_id`)
);
