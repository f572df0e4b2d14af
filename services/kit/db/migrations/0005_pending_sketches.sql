CREATE TABLE `pending_sketches` (
	`stat_id` int unsigned NOT NULL,
	`bucket` int unsigned NOT NULL,
	`format` tinyint unsigned NOT NULL,
	`since` int unsigned NOT NULL,
	`sketch` mediumblob NOT NULL,
	CONSTRAINT `pending_sketches_stat_id_bucket_pk` PRIMARY KEY(`stat_id`,`bucket`)
);
