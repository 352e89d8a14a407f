/** What a side effect the script asked for returns in `qrelay check`. */
export const DRY_RUN_REFUSAL = 'not performed: qrelay check is a dry run';
