// Runs only once statistics are allowed: configures Google Analytics.
gtag('js', new Date())
gtag('config', 'G-BELVAST01')
