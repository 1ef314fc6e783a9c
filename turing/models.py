# Studies, study items, reader assignments and answers.
