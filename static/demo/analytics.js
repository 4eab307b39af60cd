// A first-party stand-in for Google Analytics, run only once statistics are
// allowed. The demo shares its origin with the console, where no third-party
// script may ever run, so it sets the cookies the real tag would (and the
// banner deletes them on refusal) and sends gtag its usual commands.
(function () {
  var id = Math.floor(Math.random() * 1e9) + '.' + Math.floor(Date.now() / 1000)
  var year = 'max-age=' + 2 * 365 * 24 * 3600 + '; path=/; SameSite=Lax'
  document.cookie = '_ga=GA1.1.' + id + '; ' + year
  document.cookie = '_ga_BELVAST01=GS1.1.' + Math.floor(Date.now() / 1000) + '; ' + year
  gtag('js', new Date())
  gtag('config', 'G-BELVAST01')
})()
