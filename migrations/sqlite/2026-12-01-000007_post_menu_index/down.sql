DROP INDEX posts_menu;
