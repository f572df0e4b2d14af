ALTER TABLE `rollups_1d` ADD `sketch` mediumblob;--> statement-breakpoint
ALTER TABLE `rollups_1h` ADD `sketch` mediumblob;--> statement-breakpoint
ALTER TABLE `rollups_1m` ADD `sketch` mediumblob;