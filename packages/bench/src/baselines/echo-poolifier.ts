/**
 * poolifier's worker file for the pool scenario: the same task function as `../tasks/echo.cts`,
 * registered the way poolifier requires (a `ThreadWorker` made in the worker module).
 */
import { ThreadWorker } from 'poolifier'
import echo = require('../tasks/echo.cjs')

export default new ThreadWorker<number, number>((input) => echo(input as number))
