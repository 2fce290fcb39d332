DROP TABLE media_chunks;
DROP TABLE media_variants;
DROP TABLE media;
